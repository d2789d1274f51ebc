import { packageBuild } from '../../tsup.shared';

export default packageBuild({
  entry: ['src/index.ts', 'src/bin.ts'],
  shims: true,
  banner: ({ format }) => (format === 'esm' ? { js: '' } : {}),
  external: [/^@tensorflow\//, /^@deltatune\//, 'webgpu', '@resvg/resvg-js'],
});
