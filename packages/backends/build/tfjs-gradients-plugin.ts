import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import type { Plugin } from 'esbuild';

/**
 * tfjs-core's Node bundle registers no gradients; its gradient definitions ship only as ES
 * modules that import tfjs-core's internals by relative path. This plugin bundles those
 * definitions into core's build with every internal import pointed at the public
 * `@tensorflow/tfjs-core` API (as the `@tensorflow/tfjs` bundle does), so there is still exactly
 * one tfjs-core at run time. Gradients of convolutions, LRN and SELU need internals the public
 * API lacks; transformers do not use them, so they are left out.
 */
const VIRTUAL = 'deltatune:tfjs-gradients';
const SKIPPED = new Set(['Conv2DBackpropInput', 'Conv2D', 'Conv3D', 'DepthwiseConv2dNative', 'LRN', 'Selu']);

/**
 * Internal module -> the public namespace that holds the same functions. Each name is exported
 * explicitly (enumerated at build time), because gradients use both named and `* as` imports.
 */
const NAMESPACES: Record<string, string> = {
  util: 'util',
  'ops/axis_util': 'backend_util',
  'ops/broadcast_util': 'backend_util',
  'ops/slice_util': 'slice_util',
};

function publicModule(rel: string, tf: Record<string, any>): string {
  if (rel === 'kernel_names' || rel === 'base') return `export * from '@tensorflow/tfjs-core';`;
  if (rel === 'engine') return `import { engine } from '@tensorflow/tfjs-core'; export const ENGINE = engine();`;
  const ns = NAMESPACES[rel];
  if (!ns) throw new Error(`tfjs gradient bundle: no public mapping for tfjs-core internal module ${rel}`);
  const names = Object.keys(tf[ns]).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k));
  return `import { ${ns} as ns } from '@tensorflow/tfjs-core';\n` + names.map((n) => `export const ${n} = ns.${n};`).join('\n');
}

export function tfjsGradients(): Plugin {
  const coreDist = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js'));
  const gradientsDir = join(coreDist, 'gradients');
  const tf = createRequire(import.meta.url)('@tensorflow/tfjs-core');
  return {
    name: 'deltatune-tfjs-gradients',
    setup(build) {
      build.onResolve({ filter: new RegExp(`^${VIRTUAL}$`) }, () => ({ path: VIRTUAL, namespace: 'tfjs-gradients' }));
      build.onLoad({ filter: /.*/, namespace: 'tfjs-gradients' }, () => {
        const names = readdirSync(gradientsDir)
          .filter((f) => f.endsWith('_grad.js') && !SKIPPED.has(f.replace('_grad.js', '')))
          .map((f) => f.replace('.js', ''));
        const imports = names.map((n, i) => `import * as g${i} from ${JSON.stringify(join(gradientsDir, n + '.js'))};`).join('\n');
        const register = names
          .map((_, i) => `for (const v of Object.values(g${i})) if (v && v.kernelName && v.gradFunc) registerGradient(v);`)
          .join('\n');
        return {
          contents: `import { registerGradient } from '@tensorflow/tfjs-core';\n${imports}\n${register}\n`,
          resolveDir: gradientsDir,
          loader: 'js',
        };
      });
      // Inside tfjs-core's dist: keep gradient files bundled, send everything else to the public API.
      build.onResolve({ filter: /^\.\.?\// }, (args) => {
        if (!args.importer.startsWith(coreDist)) return undefined;
        const target = resolve(dirname(args.importer), args.path);
        const rel = relative(coreDist, target).replace(/\.js$/, '');
        if (rel.startsWith('gradients/')) return { path: target.endsWith('.js') ? target : `${target}.js` };
        if (rel.startsWith('ops/') && !(rel in NAMESPACES)) return { path: rel, namespace: 'tfjs-public-op' };
        return { path: rel, namespace: 'tfjs-public' };
      });
      build.onLoad({ filter: /.*/, namespace: 'tfjs-public' }, (args) => ({ contents: publicModule(args.path, tf), loader: 'js' }));
      // Every op a gradient imports (`../ops/mul`) is a top-level export of tfjs-core.
      build.onLoad({ filter: /.*/, namespace: 'tfjs-public-op' }, () => ({
        contents: `export * from '@tensorflow/tfjs-core';`,
        loader: 'js',
      }));
    },
  };
}
