/** Hand-written SVG line charts: throughput against concurrency, and the worker pool over time. */
import type { Results } from './types.ts';

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
const r1 = (n: number) => Math.round(n * 10) / 10;

interface Series {
  name: string;
  points: Array<[number, number]>;
}

interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Category x axis (evenly spaced, labelled by value) instead of a linear one. */
  categorical?: boolean;
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return Math.ceil(v / p / 0.5) * 0.5 * p;
}

function panel(p: Panel, x0: number, y0: number, w: number, h: number): string[] {
  const out: string[] = [];
  const xsAll = [...new Set(p.series.flatMap((s) => s.points.map(([x]) => x)))].sort((a, b) => a - b);
  const yMax = niceMax(Math.max(0, ...p.series.flatMap((s) => s.points.map(([, y]) => y))));
  const xMin = p.categorical ? 0 : Math.min(...xsAll, 0);
  const xMax = p.categorical ? Math.max(1, xsAll.length - 1) : Math.max(...xsAll, 1);
  const xs = (x: number) => {
    const v = p.categorical ? xsAll.indexOf(x) : x;
    return x0 + ((v - xMin) / (xMax - xMin || 1)) * w;
  };
  const ys = (y: number) => y0 + h - (y / yMax) * h;
  out.push(`<text x="${x0 + w / 2}" y="${y0 - 10}" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
  for (let t = 0; t <= 5; t++) {
    const v = (yMax * t) / 5;
    out.push(
      `<line x1="${x0}" x2="${x0 + w}" y1="${r1(ys(v))}" y2="${r1(ys(v))}" stroke="#ddd"/>`,
      `<text x="${x0 - 6}" y="${r1(ys(v) + 4)}" text-anchor="end">${r1(v)}</text>`,
    );
  }
  const ticks = p.categorical ? xsAll : Array.from({ length: 6 }, (_, i) => r1(xMin + ((xMax - xMin) * i) / 5));
  for (const t of ticks) out.push(`<text x="${r1(xs(t))}" y="${y0 + h + 16}" text-anchor="middle">${t}</text>`);
  out.push(
    `<text x="${x0 + w / 2}" y="${y0 + h + 34}" text-anchor="middle">${esc(p.xLabel)}</text>`,
    `<text x="${x0 - 44}" y="${y0 + h / 2}" text-anchor="middle" transform="rotate(-90 ${x0 - 44} ${y0 + h / 2})">${esc(p.yLabel)}</text>`,
  );
  p.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = s.points.map(([x, y]) => `${r1(xs(x))},${r1(ys(y))}`).join(' ');
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts}"/>`);
    if (s.points.length <= 20)
      for (const [x, y] of s.points) out.push(`<circle cx="${r1(xs(x))}" cy="${r1(ys(y))}" r="3" fill="${color}"/>`);
    const ly = y0 + h + 54 + i * 16;
    out.push(
      `<line x1="${x0}" x2="${x0 + 20}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${x0 + 26}" y="${ly}">${esc(s.name)}</text>`,
    );
  });
  return out;
}

function svg(title: string, panels: Panel[], width = 960): string {
  const legend = Math.max(...panels.map((p) => p.series.length)) * 16;
  const h = 300;
  const H = 60 + h + 60 + legend + 10;
  const pw = width / panels.length - 110;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H}" viewBox="0 0 ${width} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${H}" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  ];
  panels.forEach((p, i) => {
    out.push(...panel(p, 70 + i * (width / panels.length), 60, pw, h));
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** latest.svg: upload and download MB/s against concurrency. */
export function throughputChart(r: Results): string | undefined {
  const t = r.throughput;
  if (!t) return undefined;
  const series = (prefix: string) =>
    Object.entries(t.sweep.series)
      .filter(([k]) => k.startsWith(prefix))
      .map(([k, v]) => ({
        name: k.slice(prefix.length + 1),
        points: v.map((f, i) => [t.sweep.levels[i]!, f.MBps] as [number, number]),
      }));
  return svg(
    `Throughput vs concurrency — ${t.sweep.sizeMiB} MiB file, ${r.partSizeMiB} MiB parts, ${r.store}, ${r.machine.cores} cores (${r.command})`,
    [
      {
        title: 'Upload',
        xLabel: 'concurrency (parts in flight)',
        yLabel: 'MB/s',
        series: series('upload'),
        categorical: true,
      },
      {
        title: 'Download',
        xLabel: 'concurrency (ranges in flight)',
        yLabel: 'MB/s',
        series: series('download'),
        categorical: true,
      },
    ],
  );
}

/** latest-workers.svg: the worker pool against time while relay load rises and falls. */
export function workersChart(r: Results): string | undefined {
  const w = r.workerScaling;
  if (!w || w.samples.length === 0) return undefined;
  const samples = w.samples;
  const pts = (f: (s: (typeof samples)[number]) => number) => samples.map((s) => [s.t, f(s)] as [number, number]);
  return svg(`Coordinator worker pool under relay load — ${r.machine.cores} cores, ${r.store}`, [
    {
      title: 'Pool',
      xLabel: 'time (s)',
      yLabel: 'count',
      series: [
        { name: 'relay clients', points: pts((s) => s.clients) },
        { name: 'workers', points: pts((s) => s.workers) },
        { name: 'busy workers', points: pts((s) => s.busy) },
        { name: 'queue depth', points: pts((s) => s.queueDepth) },
      ],
    },
    {
      title: 'Relay throughput',
      xLabel: 'time (s)',
      yLabel: 'MB/s',
      series: [{ name: 'relayed MB/s', points: pts((s) => s.relayMBps) }],
    },
  ]);
}
