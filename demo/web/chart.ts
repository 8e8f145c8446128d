/**
 * The live loss chart: a plain canvas line chart (no chart library) of the loss of every step,
 * its moving average, and a dashed reference line.
 */

/** What the chart draws. */
export interface ChartData {
  /** The loss of each applied step, in order (step 1 first). */
  readonly losses: readonly number[];
  /** Steps planned for the run, so the x axis does not rescale at every step. */
  readonly plannedSteps: number;
  /** A horizontal reference line and its label (NT-Xent's value when all views look alike). */
  readonly reference?: { readonly value: number; readonly label: string };
}

const COLORS = {
  axis: '#555',
  grid: '#e4e4e4',
  raw: '#9ec5f0',
  smooth: '#1565c0',
  reference: '#c62828',
  text: '#222',
};

/** The mean of each value's window of up to `width` values ending at it. */
export function movingAverage(values: readonly number[], width: number): number[] {
  const out: number[] = [];
  let sum = 0;
  values.forEach((v, i) => {
    sum += v;
    if (i >= width) sum -= values[i - width] ?? 0;
    out.push(sum / Math.min(i + 1, width));
  });
  return out;
}

// Round tick steps (1, 2, 5 x 10^k, at least `minStep`) giving about `count` ticks over [lo, hi].
function ticks(lo: number, hi: number, count: number, minStep = 0): number[] {
  const span = hi - lo || 1;
  const raw = Math.max(span / count, minStep);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * span; t += step) {
    out.push(Number(t.toPrecision(12)));
  }
  return out;
}

/** Draws the chart into `canvas`, sized to its CSS box at the device's pixel ratio. */
export function drawLossChart(canvas: HTMLCanvasElement, data: ChartData): void {
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
  }
  const ctx = canvas.getContext('2d');
  if (ctx === null) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = '12px system-ui, sans-serif';

  const pad = { left: 52, right: 16, top: 12, bottom: 40 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const losses = data.losses.filter((v) => Number.isFinite(v));
  const xMax = Math.max(data.plannedSteps, data.losses.length, 2);
  const values = [...losses, ...(data.reference === undefined ? [] : [data.reference.value])];
  let yLo = values.length === 0 ? 0 : Math.min(...values);
  let yHi = values.length === 0 ? 1 : Math.max(...values);
  const margin = (yHi - yLo) * 0.08 || 0.5;
  yLo = Math.max(0, yLo - margin);
  yHi += margin;
  const x = (step: number): number => pad.left + ((step - 1) / (xMax - 1)) * plotW;
  const y = (v: number): number => pad.top + (1 - (v - yLo) / (yHi - yLo)) * plotH;

  // Grid and tick labels.
  ctx.strokeStyle = COLORS.grid;
  ctx.fillStyle = COLORS.text;
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const t of ticks(yLo, yHi, 5)) {
    ctx.beginPath();
    ctx.moveTo(pad.left, y(t));
    ctx.lineTo(pad.left + plotW, y(t));
    ctx.stroke();
    ctx.fillText(t.toFixed(t % 1 === 0 ? 0 : 1), pad.left - 6, y(t));
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const t of ticks(1, xMax, 8, 1).filter((s) => s >= 1)) {
    ctx.beginPath();
    ctx.moveTo(x(t), pad.top);
    ctx.lineTo(x(t), pad.top + plotH);
    ctx.stroke();
    ctx.fillText(String(t), x(t), pad.top + plotH + 5);
  }
  ctx.strokeStyle = COLORS.axis;
  ctx.strokeRect(pad.left, pad.top, plotW, plotH);
  ctx.fillText('training step', pad.left + plotW / 2, pad.top + plotH + 22);
  ctx.save();
  ctx.translate(14, pad.top + plotH / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = 'middle';
  ctx.fillText('NT-Xent loss', 0, 0);
  ctx.restore();

  if (data.reference !== undefined) {
    const ry = y(data.reference.value);
    ctx.strokeStyle = COLORS.reference;
    ctx.setLineDash([6, 4]);
    ctx.beginPath();
    ctx.moveTo(pad.left, ry);
    ctx.lineTo(pad.left + plotW, ry);
    ctx.stroke();
    ctx.setLineDash([]);
  }

  const line = (series: readonly number[], color: string, widthPx: number): void => {
    ctx.strokeStyle = color;
    ctx.lineWidth = widthPx;
    ctx.beginPath();
    series.forEach((v, i) => {
      if (i === 0) ctx.moveTo(x(1), y(v));
      else ctx.lineTo(x(i + 1), y(v));
    });
    if (series.length === 1) ctx.arc(x(1), y(series[0] ?? 0), 1.5, 0, 2 * Math.PI);
    ctx.stroke();
  };
  line(data.losses, COLORS.raw, 1.5);
  line(movingAverage(data.losses, 10), COLORS.smooth, 2.5);

  // The reference line's label last, on a backing box, so the curves never hide it.
  if (data.reference !== undefined) {
    const ry = y(data.reference.value);
    const label = data.reference.label;
    const w = ctx.measureText(label).width;
    const lx = pad.left + plotW - 6 - w;
    ctx.fillStyle = 'rgba(255, 255, 255, 0.85)';
    ctx.fillRect(lx - 3, ry - 17, w + 6, 15);
    ctx.fillStyle = COLORS.reference;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'bottom';
    ctx.fillText(label, lx, ry - 3);
  }

  // Legend.
  ctx.textAlign = 'left';
  ctx.textBaseline = 'middle';
  ctx.lineWidth = 3;
  const legend: [string, string][] = [
    [COLORS.raw, 'loss of each step'],
    [COLORS.smooth, 'mean of the last 10 steps'],
  ];
  let lx = pad.left + 10;
  const ly = pad.top + 12;
  for (const [color, label] of legend) {
    ctx.strokeStyle = color;
    ctx.beginPath();
    ctx.moveTo(lx, ly);
    ctx.lineTo(lx + 18, ly);
    ctx.stroke();
    ctx.fillStyle = COLORS.text;
    ctx.fillText(label, lx + 24, ly);
    lx += 24 + ctx.measureText(label).width + 18;
  }
}
