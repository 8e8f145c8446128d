/**
 * The demo's figures as PNG files, without a native canvas: a Vega-Lite spec is compiled to Vega,
 * rendered to SVG by Vega's headless renderer and rasterised by resvg (a prebuilt Rust binary).
 */
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** Renders a Vega-Lite spec to a PNG at twice its nominal size (crisp on high-DPI screens). */
export async function renderPng(spec: TopLevelSpec): Promise<Buffer> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: 2 },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  })
    .render()
    .asPng();
  return Buffer.from(png);
}

const FONT = { font: 'DejaVu Sans', labelFont: 'DejaVu Sans', titleFont: 'DejaVu Sans' };

/**
 * The training loss per step (thin) with its moving average over `window` steps (bold).
 */
export function lossCurveSpec(losses: readonly number[], title: string, window = 20): TopLevelSpec {
  const values = losses.map((loss, step) => ({ step: step + 1, loss }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: title,
      subtitle: `thin: each step; bold: mean of the last ${window} steps`,
      font: FONT.titleFont,
      subtitleFont: FONT.titleFont,
      fontSize: 15,
    },
    width: 640,
    height: 320,
    data: { values },
    config: {
      axis: { labelFont: FONT.labelFont, titleFont: FONT.titleFont },
      legend: { labelFont: FONT.labelFont, titleFont: FONT.titleFont },
    },
    layer: [
      {
        mark: { type: 'line', color: '#9ecae1', strokeWidth: 1 },
        encoding: {
          x: {
            field: 'step',
            type: 'quantitative',
            title: 'step',
            axis: { format: 'd', tickMinStep: 1 },
          },
          y: { field: 'loss', type: 'quantitative', title: 'loss', scale: { zero: false } },
        },
      },
      {
        transform: [
          { window: [{ op: 'mean', field: 'loss', as: 'smoothed' }], frame: [-window + 1, 0] },
        ],
        mark: { type: 'line', color: '#08519c', strokeWidth: 2.5 },
        encoding: {
          x: { field: 'step', type: 'quantitative' },
          y: { field: 'smoothed', type: 'quantitative' },
        },
      },
    ],
  };
}

/** One panel of the embedding map: 2-D points with their class. */
export interface MapPanel {
  /** The panel's title, e.g. `random init (kNN 77.8%)`. */
  readonly title: string;
  /** [x0, y0, x1, y1, ...] */
  readonly points: readonly (readonly number[])[];
  /** The class of each point. */
  readonly labels: ArrayLike<number>;
}

/** Scatter plots of 2-D maps side by side, coloured by class name. */
export function embeddingMapSpec(
  panels: readonly MapPanel[],
  classNames: readonly string[],
  title: string,
): TopLevelSpec {
  const values = panels.flatMap((panel, p) =>
    panel.points.map((pt, i) => ({
      panel: panel.title,
      order: p,
      x: pt[0],
      y: pt[1],
      class: classNames[panel.labels[i] ?? 0],
    })),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, font: FONT.titleFont, fontSize: 15 },
    data: { values },
    config: {
      axis: { labelFont: FONT.labelFont, titleFont: FONT.titleFont },
      legend: { labelFont: FONT.labelFont, titleFont: FONT.titleFont },
      header: { labelFont: FONT.labelFont, titleFont: FONT.titleFont, labelFontSize: 13 },
    },
    facet: {
      column: {
        field: 'panel',
        type: 'nominal',
        title: null,
        sort: panels.map((p) => p.title),
      },
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
    spec: {
      width: 380,
      height: 380,
      mark: { type: 'circle', size: 9, opacity: 0.75 },
      encoding: {
        x: { field: 'x', type: 'quantitative', axis: null, scale: { zero: false } },
        y: { field: 'y', type: 'quantitative', axis: null, scale: { zero: false } },
        color: {
          field: 'class',
          type: 'nominal',
          sort: [...classNames],
          scale: { scheme: 'tableau10' },
          title: 'class',
        },
      },
    },
  };
}
