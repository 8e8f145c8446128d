/**
 * Launches Debian's headless Chromium (/usr/bin/chromium, or CHROMIUM_PATH) through
 * playwright-core, with the flags that work here as root and give the page WebGL2 and WebGPU
 * (both on SwiftShader); no browser is downloaded. The same flags as server.ts's openTestPage.
 */
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM } from './server.js';

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
