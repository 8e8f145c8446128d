/**
 * Launches Debian's headless Chromium (/usr/bin/chromium, or CHROMIUM_PATH) through
 * playwright-core, with the flags that work here as root and give the page WebGL2 and WebGPU
 * (both on SwiftShader); no browser is downloaded. Every browser test launches it through here.
 */
import { chromium, type Browser } from 'playwright-core';

/** The Chromium binary the browser tests drive. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--enable-unsafe-webgpu',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS] });
}
