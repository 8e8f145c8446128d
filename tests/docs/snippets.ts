/**
 * The documentation's code snippets as programs: collected from README.md, docs/**\/*.md (not the
 * generated docs/api) and the `@example` blocks of the doc comments in src/, written as modules,
 * type-checked together and run (tests/docs/snippets.test.ts; the conventions are in
 * tests/docs/README.md).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';

export const ROOT = resolve(import.meta.dirname, '../..');
/** Where the snippet modules are written: inside the repository, so tsconfig's `paths` apply. */
export const OUT_DIR = join(ROOT, '.tmp/doc-snippets');
export const SETUP_DIR = join(ROOT, 'tests/docs/setup');

/** One ```ts block of a Markdown file or of an `@example`. */
export interface Snippet {
  /** Repository-relative path of the file it is written in. */
  readonly file: string;
  /** 1-based line of the snippet's first code line in that file. */
  readonly line: number;
  /** The code, with the doc comment's ` * ` prefixes removed. */
  readonly code: string;
  /** Setup preludes (tests/docs/setup/<name>.ts) put before the code, in order. */
  readonly setup: readonly string[];
  /** With a reason: type-checked but not run. */
  readonly typecheckOnly?: string;
  /** With a reason: neither type-checked nor run. */
  readonly skip?: string;
  /** A malformed marker, reported by the test. */
  readonly markerError?: string;
}

/** `file:line`, as the failure messages name a snippet. */
export function where(s: Pick<Snippet, 'file' | 'line'>): string {
  return `${s.file}:${s.line}`;
}

const FENCE_OPEN = /^\s*```(ts|typescript)\s*$/;
const FENCE_ANY_OPEN = /^\s*```\S*\s*$/;
const FENCE_CLOSE = /^\s*```\s*$/;
const MARKER = /^\s*<!--\s*snippet\b(.*?)-->\s*$/;
const ATTRIBUTE = /([a-z-]+)="([^"]*)"/g;

function parseMarker(text: string | undefined): {
  setup: string[];
  typecheckOnly?: string;
  skip?: string;
  markerError?: string;
} {
  const result: { setup: string[]; typecheckOnly?: string; skip?: string; markerError?: string } = {
    setup: [],
  };
  if (text === undefined) return result;
  const m = MARKER.exec(text);
  if (m === null) return result;
  const body = m[1] ?? '';
  const rest = body.replace(ATTRIBUTE, '').trim();
  if (rest !== '') result.markerError = `unrecognised text in the snippet marker: '${rest}'`;
  for (const [, key, value] of body.matchAll(ATTRIBUTE)) {
    const v = (value ?? '').trim();
    if (key === 'setup') {
      result.setup = v.split(/[\s,]+/).filter((s) => s !== '');
      for (const name of result.setup) {
        if (!existsSync(join(SETUP_DIR, `${name}.ts`))) {
          result.markerError = `setup '${name}' does not exist (tests/docs/setup/${name}.ts)`;
        }
      }
    } else if (key === 'typecheck-only' || key === 'skip') {
      if (v.length < 8) result.markerError = `${key} needs a reason (got '${v}')`;
      if (key === 'skip') result.skip = v;
      else result.typecheckOnly = v;
    } else {
      result.markerError = `unknown snippet marker attribute '${key ?? ''}'`;
    }
  }
  return result;
}

/**
 * The ts blocks of some lines (a Markdown file, or the text of one `@example`): `lineOf(i)` is
 * the file line of `lines[i]`. A marker is the last non-blank line before the fence.
 */
function blocksOf(
  file: string,
  lines: readonly string[],
  lineOf: (i: number) => number,
): Snippet[] {
  const out: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i] ?? '';
    if (!FENCE_ANY_OPEN.test(open)) continue;
    let j = i + 1;
    while (j < lines.length && !FENCE_CLOSE.test(lines[j] ?? '')) j++;
    if (FENCE_OPEN.test(open)) {
      let k = i - 1;
      while (k >= 0 && (lines[k] ?? '').trim() === '') k--;
      const marker = parseMarker(k >= 0 ? lines[k] : undefined);
      const indent = /^\s*/.exec(open)?.[0].length ?? 0;
      const code = lines
        .slice(i + 1, j)
        .map((l) => l.slice(Math.min(indent, /^\s*/.exec(l)?.[0].length ?? 0)))
        .join('\n');
      out.push({ file, line: lineOf(i + 1), code, ...marker });
    }
    i = j;
  }
  return out;
}

function walk(dir: string, keep: (path: string) => boolean): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => {
      const p = join(dir, e.name);
      if (e.isDirectory()) return walk(p, keep);
      return keep(p) ? [p] : [];
    });
}

/** The Markdown files whose snippets are checked: README.md and docs/ except the generated API. */
export function markdownFiles(): string[] {
  const api = join(ROOT, 'docs/api');
  return [
    join(ROOT, 'README.md'),
    ...walk(join(ROOT, 'docs'), (p) => p.endsWith('.md') && !p.startsWith(api + '/')),
  ];
}

export function markdownSnippets(path: string): Snippet[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  return blocksOf(relative(ROOT, path), lines, (i) => i + 1);
}

/** The `@example` blocks of the doc comments of one source file. */
export function exampleSnippets(path: string): Snippet[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const file = relative(ROOT, path);
  const out: Snippet[] = [];
  let inComment = false;
  let example: { start: number; lines: string[] } | undefined;
  const flush = (): void => {
    if (example !== undefined) {
      const start = example.start;
      out.push(...blocksOf(file, example.lines, (i) => start + i + 1));
    }
    example = undefined;
  };
  lines.forEach((raw, i) => {
    if (!inComment) {
      if (/^\s*\/\*\*/.test(raw) && !raw.includes('*/')) inComment = true;
      return;
    }
    if (/^\s*\*\//.test(raw) || raw.includes('*/')) {
      flush();
      inComment = false;
      return;
    }
    const text = raw.replace(/^\s*\* ?/, '');
    if (/^@example\b/.test(text)) {
      flush();
      example = { start: i + 1, lines: [] };
      return;
    }
    if (/^@\w+/.test(text)) {
      flush();
      return;
    }
    example?.lines.push(text);
  });
  return out;
}

export function sourceFiles(): string[] {
  return walk(join(ROOT, 'src'), (p) => p.endsWith('.ts'));
}

/** Every snippet of the README, docs/ and src/, in that order. */
export function collectSnippets(): Snippet[] {
  return [...markdownFiles().flatMap(markdownSnippets), ...sourceFiles().flatMap(exampleSnippets)];
}

/** Where a line of a generated module came from. */
export type Origin =
  { kind: 'snippet'; line: number } | { kind: 'setup'; name: string; line: number };

export interface GeneratedModule {
  readonly snippet: Snippet;
  /** Absolute path of the module. */
  readonly path: string;
  /** origins[i]: where line i + 1 of the module came from (undefined: generated). */
  readonly origins: readonly (Origin | undefined)[];
}

/** Describes line `line` (1-based) of a generated module in the words of its origin. */
export function originOf(module: GeneratedModule, line: number): string {
  const o = module.origins[line - 1];
  if (o === undefined) return `${where(module.snippet)} (generated line ${line})`;
  if (o.kind === 'setup')
    return `tests/docs/setup/${o.name}.ts:${o.line} (setup of ${where(module.snippet)})`;
  return `${module.snippet.file}:${module.snippet.line + o.line - 1}`;
}

// `import { x } from './other.js';` or `import './other.js';`
const RELATIVE_IMPORT = /^import\s(?:.*from\s+)?'\.\/([\w-]+)\.js';\s*$/;

/** Setup names with the setups they import (`from './other.js'`) first, each once. */
function withDependencies(names: readonly string[]): string[] {
  const out: string[] = [];
  const visit = (name: string, path: readonly string[]): void => {
    if (out.includes(name)) return;
    if (path.includes(name))
      throw new Error(`setups import each other: ${[...path, name].join(' -> ')}`);
    const text = readFileSync(join(SETUP_DIR, `${name}.ts`), 'utf8');
    for (const line of text.split('\n')) {
      const m = RELATIVE_IMPORT.exec(line);
      if (m?.[1] !== undefined) visit(m[1], [...path, name]);
    }
    out.push(name);
  };
  for (const name of names) visit(name, []);
  return out;
}

function slug(s: Snippet): string {
  return `${s.file.replace(/[^A-Za-z0-9]+/g, '-')}-L${s.line}`;
}

/**
 * Writes one module per snippet to {@link OUT_DIR}: the setup preludes (their import lines once
 * each, first), then the snippet's code, then `export {}` so that every snippet is a module.
 */
export function writeModules(snippets: readonly Snippet[]): GeneratedModule[] {
  rmSync(OUT_DIR, { recursive: true, force: true });
  mkdirSync(OUT_DIR, { recursive: true });
  return snippets.map((snippet) => {
    const lines: string[] = [];
    const origins: (Origin | undefined)[] = [];
    const imports = new Set<string>();
    const bodies: { name: string; lines: { text: string; line: number }[] }[] = [];
    for (const name of withDependencies(snippet.setup)) {
      const setupLines = readFileSync(join(SETUP_DIR, `${name}.ts`), 'utf8').split('\n');
      const body: { text: string; line: number }[] = [];
      setupLines.forEach((text, i) => {
        // A relative import names another setup, included before this one.
        if (RELATIVE_IMPORT.test(text)) return;
        if (/^import\s/.test(text)) imports.add(text);
        else body.push({ text, line: i + 1 });
      });
      bodies.push({ name, lines: body });
    }
    lines.push(`// Generated from ${where(snippet)} by tests/docs/snippets.ts.`);
    origins.push(undefined);
    for (const text of imports) {
      lines.push(text);
      origins.push(undefined);
    }
    for (const { name, lines: body } of bodies) {
      for (const { text, line } of body) {
        lines.push(text);
        origins.push({ kind: 'setup', name, line });
      }
    }
    snippet.code.split('\n').forEach((text, i) => {
      lines.push(text);
      origins.push({ kind: 'snippet', line: i + 1 });
    });
    lines.push('export {};', '');
    origins.push(undefined, undefined);
    const path = join(OUT_DIR, `${slug(snippet)}.ts`);
    writeFileSync(path, lines.join('\n'));
    return { snippet, path, origins };
  });
}

function compilerOptions(): ts.CompilerOptions {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    join(ROOT, 'tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  if (parsed === undefined) throw new Error('tsconfig.json could not be read');
  return { ...parsed.options, noEmit: true };
}

/** Entry points of the API documentation (typedoc.json's `entryPoints`). */
export function apiEntryPoints(): string[] {
  const config = JSON.parse(readFileSync(join(ROOT, 'typedoc.json'), 'utf8')) as {
    entryPoints: string[];
  };
  return config.entryPoints.map((p) => join(ROOT, p));
}

/**
 * Type-checks the modules in one program (with the API entry points, for {@link missingExamples})
 * and returns each module's diagnostics, described at their origin, and the program.
 */
export function typecheck(modules: readonly GeneratedModule[]): {
  diagnostics: Map<string, string[]>;
  program: ts.Program;
} {
  const program = ts.createProgram({
    rootNames: [...modules.map((m) => m.path), ...apiEntryPoints()],
    options: compilerOptions(),
  });
  const diagnostics = new Map<string, string[]>();
  for (const module of modules) {
    const sf = program.getSourceFile(module.path);
    if (sf === undefined) throw new Error(`not in the program: ${module.path}`);
    const found = [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)];
    diagnostics.set(
      module.path,
      found.map((d) => {
        const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
        if (d.start === undefined) return `TS${d.code}: ${text}`;
        const { line } = sf.getLineAndCharacterOfPosition(d.start);
        return `${originOf(module, line + 1)}: TS${d.code}: ${text}`;
      }),
    );
  }
  return { diagnostics, program };
}

/**
 * The exported functions and classes of the API entry points whose doc comment has no
 * `@example`, as `name (file)`.
 */
export function missingExamples(program: ts.Program): string[] {
  const checker = program.getTypeChecker();
  const missing = new Set<string>();
  for (const entry of apiEntryPoints()) {
    const sf = program.getSourceFile(entry);
    const symbol = sf === undefined ? undefined : checker.getSymbolAtLocation(sf);
    if (symbol === undefined) throw new Error(`no module symbol for ${entry}`);
    for (const exported of checker.getExportsOfModule(symbol)) {
      const target =
        exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const declarations = target.declarations ?? [];
      const documented = declarations.filter(
        (d) =>
          ts.isFunctionDeclaration(d) ||
          ts.isClassDeclaration(d) ||
          (ts.isVariableDeclaration(d) &&
            d.initializer !== undefined &&
            (ts.isArrowFunction(d.initializer) || ts.isFunctionExpression(d.initializer))),
      );
      if (documented.length === 0) continue;
      const hasExample = documented.some((d) => {
        const node = ts.isVariableDeclaration(d) ? d.parent.parent : d;
        return ts.getJSDocTags(node).some((t) => t.tagName.text === 'example');
      });
      if (!hasExample) {
        const file = relative(ROOT, documented[0]?.getSourceFile().fileName ?? '');
        missing.add(`${exported.name} (${file})`);
      }
    }
  }
  return [...missing].sort();
}

/** What running one module gave (tests/docs/run-snippets.ts). */
export interface RunResult {
  readonly path: string;
  readonly ok: boolean;
  readonly ms: number;
  readonly leftTensors: number;
  readonly error?: string;
}

/**
 * Runs the modules in order in one tsx child process, in a scratch working directory under
 * {@link OUT_DIR}, and returns each one's result by path (a module whose result is missing
 * crashed the process: its entry holds the process's output).
 */
export async function runModules(
  modules: readonly GeneratedModule[],
  options: { timeoutMs?: number; totalTimeoutMs?: number } = {},
): Promise<Map<string, RunResult>> {
  const work = join(OUT_DIR, 'work');
  mkdirSync(work, { recursive: true });
  const manifest = join(OUT_DIR, 'manifest.json');
  const resultsPath = join(OUT_DIR, 'results.jsonl');
  writeFileSync(
    manifest,
    JSON.stringify(modules.map((m) => ({ path: m.path, timeoutMs: options.timeoutMs ?? 20_000 }))),
  );
  writeFileSync(resultsPath, '');
  const { spawn } = await import('node:child_process');
  const tsx = join(ROOT, 'node_modules/tsx/dist/cli.mjs');
  const child = spawn(
    process.execPath,
    [
      tsx,
      '--tsconfig',
      join(ROOT, 'tsconfig.json'),
      join(ROOT, 'tests/docs/run-snippets.ts'),
      manifest,
      resultsPath,
    ],
    { cwd: work, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } },
  );
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const killer = setTimeout(() => child.kill('SIGKILL'), options.totalTimeoutMs ?? 300_000);
  const code = await new Promise<number | null>((r) => child.on('close', r));
  clearTimeout(killer);
  const results = new Map<string, RunResult>();
  for (const line of readFileSync(resultsPath, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const r = JSON.parse(line) as RunResult;
    results.set(r.path, r);
  }
  const firstMissing = modules.find((m) => !results.has(m.path));
  if (firstMissing !== undefined) {
    results.set(firstMissing.path, {
      path: firstMissing.path,
      ok: false,
      ms: 0,
      leftTensors: 0,
      error: `the snippet process exited (code ${code}) while running it; its output:\n${output}`,
    });
  }
  return results;
}

/**
 * Rewrites the generated modules' paths and lines in an error's stack to their origins, and
 * keeps the frames that say something: those of the snippets, the setups and the library.
 */
export function mapStack(text: string, modules: readonly GeneratedModule[]): string {
  let out = text;
  for (const m of modules) {
    if (!out.includes(m.path)) continue;
    out = out.replaceAll(new RegExp(`${escape(m.path)}:(\\d+)(?::\\d+)?`, 'g'), (_, line: string) =>
      originOf(m, Number(line)),
    );
  }
  return out
    .replaceAll(ROOT + '/', '')
    .split('\n')
    .filter(
      (line) =>
        !/^\s+at /.test(line) ||
        !/node:internal|node_modules|tfjs-[a-z-]+\/src\/|run-snippets\.ts/.test(line),
    )
    .join('\n');
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
