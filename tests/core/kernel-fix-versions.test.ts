/**
 * The kernel fixes are installed only on the tfjs-core versions they were checked on: another
 * version gets one warning and no fixes unless forced; selectBackend reports the skip in its notes
 * and takes kernelFixes: 'force'.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterEach, describe, expect, it } from 'vitest';
import {
  KERNEL_FIXES_CHECKED_ON,
  installKernelFixes,
  removeKernelFixes,
  selectBackend,
} from '../../src/core/index.js';

describe('kernel fixes and the tfjs version', () => {
  afterEach(() => {
    installKernelFixes('cpu'); // the version in use is a checked one: back to the fixed kernels
  });

  it('the installed tfjs-core is a checked version, and the fixes install on it', () => {
    expect(KERNEL_FIXES_CHECKED_ON).toContain(tf.version_core);
    removeKernelFixes('cpu');
    const stock = tf.getKernel('Conv2DBackpropFilter', 'cpu');
    const report = installKernelFixes('cpu');
    expect(report.kernels).toEqual(['Conv2DBackpropFilter']);
    expect(report.skipped).toBeUndefined();
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')).not.toBe(stock);
  });

  it('another version: a warning once, nothing installed (the stock kernel stays), unless forced', () => {
    removeKernelFixes('cpu');
    const stock = tf.getKernel('Conv2DBackpropFilter', 'cpu');
    const warnings: string[] = [];
    const onWarning = (m: string): void => {
      warnings.push(m);
    };
    const report = installKernelFixes('cpu', { version: '9.0.0', onWarning });
    expect(report.kernels).toEqual([]);
    expect(report.skipped).toMatch(
      /checked on tfjs-core 4\.22\.0, and this is 9\.0\.0: not installed/,
    );
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')).toBe(stock);
    installKernelFixes('cpu', { version: '9.0.0', onWarning });
    expect(warnings).toHaveLength(1);
    const forced = installKernelFixes('cpu', { version: '9.0.0', force: true, onWarning });
    expect(forced.kernels).toEqual(['Conv2DBackpropFilter']);
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')).not.toBe(stock);
    expect(warnings).toHaveLength(1);
  });

  it("selectBackend takes kernelFixes: 'force' and refuses other values", async () => {
    const info = await selectBackend('cpu', { kernelFixes: 'force' });
    expect(info.kernelFixes).toEqual(['Conv2DBackpropFilter']);
    await expect(selectBackend('cpu', { kernelFixes: 'yes' as never })).rejects.toThrow(
      "selectBackend: argument 'options.kernelFixes' must be true, false or 'force'",
    );
  });
});
