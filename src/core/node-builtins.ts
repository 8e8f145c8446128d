/**
 * Loads a Node built-in module without a static or literal import, so that browser bundlers
 * neither try to resolve nor polyfill it (the code paths that need one run only in Node), and
 * returns its CommonJS exports object: the one tfjs's own `require` sees, and so the one that
 * can be patched.
 *
 * @internal
 */
export async function nodeBuiltin<T>(
  name: 'os' | 'fs' | 'path' | 'url' | 'module' | 'worker_threads',
): Promise<T> {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  // Node >= 20.16 hands built-ins out synchronously, which no bundler rewrites.
  if (typeof proc?.getBuiltinModule === 'function')
    return proc.getBuiltinModule(`node:${name}`) as T;
  const specifier = `node:${name}`;
  const ns = (await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier)) as {
    default?: T;
  };
  return ns.default ?? (ns as T);
}
