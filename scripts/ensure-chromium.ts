// Before the browser tests: checks that Debian's Chromium is there (or CHROMIUM_PATH points to a
// Chromium), installs Debian's package with apt-get when it is missing and this is root on
// Debian, and otherwise stops with a message saying what to install. No browser is downloaded.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';

const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function works(): string | undefined {
  try {
    accessSync(path, constants.X_OK);
    return execFileSync(path, ['--version'], {
      encoding: 'utf8',
      timeout: 30_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

let version = works();
const root = typeof process.getuid === 'function' && process.getuid() === 0;
if (
  version === undefined &&
  process.env.CHROMIUM_PATH === undefined &&
  root &&
  existsSync('/usr/bin/apt-get')
) {
  console.error(
    "The browser tests need Chromium: installing Debian's chromium package (apt-get) ...",
  );
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', 'chromium'], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env,
    });
  } catch (e) {
    console.error(`apt-get failed: ${(e as Error).message}`);
  }
  version = works();
}
if (version === undefined) {
  console.error(
    [
      `The browser tests need Chromium at ${path}, and it ${existsSync(path) ? 'does not run' : 'is missing'}.`,
      "Install Debian's package:  sudo apt-get install chromium",
      'or point CHROMIUM_PATH to a Chromium or Chrome binary:  CHROMIUM_PATH=/path/to/chrome npm test',
      '(The tests drive it with playwright-core; they never download a browser.)',
    ].join('\n'),
  );
  process.exit(1);
}
console.log(`browser tests: ${version} (${path})`);
