/** The timing helper the benchmark scripts share. */

/** The median time in ms of `reps` runs of `f`, after one warm-up run (compilation, memory growth). */
export async function timeIt(f: () => Promise<void>, reps: number): Promise<number> {
  await f();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await f();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] as number;
}
