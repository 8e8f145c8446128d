import {
  collectSnippets,
  writeModules,
  typecheck,
  runModules,
  mapStack,
  where,
  missingExamples,
} from '../../tests/docs/snippets.js';
const t0 = performance.now();
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
const all = collectSnippets();
for (const s of all) if (s.markerError !== undefined) console.log(`${where(s)}: ${s.markerError}`);
const snippets = all.filter(
  (s) =>
    s.skip === undefined &&
    s.markerError === undefined &&
    (only === undefined || s.file.includes(only)),
);
const modules = writeModules(snippets);
const { diagnostics, program } = typecheck(modules);
const t1 = performance.now();
let bad = 0;
for (const m of modules) {
  const d = diagnostics.get(m.path) ?? [];
  if (d.length) {
    bad++;
    console.log(d.join('\n'));
  }
}
console.log(`typecheck ${((t1 - t0) / 1000).toFixed(1)} s, ${bad}/${modules.length} with errors`);
console.log('missing examples:', missingExamples(program));
if (process.argv.includes('run')) {
  const toRun = modules.filter((m) => m.snippet.typecheckOnly === undefined);
  const results = await runModules(toRun);
  let failed = 0;
  for (const m of toRun) {
    const r = results.get(m.path);
    if (!r?.ok) {
      failed++;
      console.log(
        `--- ${where(m.snippet)} FAILED\n${mapStack(r?.error ?? 'no result', modules)
          .split('\n')
          .slice(0, 6)
          .join('\n')}`,
      );
    }
  }
  const slow = [...results.values()]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 8)
    .map((r) => `${r.path.split('/').pop()} ${r.ms} ms left ${r.leftTensors}`);
  console.log(slow.join('\n'));
  console.log(
    `run ${((performance.now() - t1) / 1000).toFixed(1)} s, ${failed}/${toRun.length} failed`,
  );
}
