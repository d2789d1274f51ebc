// ESLint (flat config): @eslint/js and typescript-eslint recommended rules, without type information
// (type-aware linting would run the whole program through tsc again; `npm run typecheck` does that).
// Formatting is prettier's (see .prettierrc.json); no stylistic rules here. Project rules that are
// about imports between packages live in scripts/lint.mjs. `npm run lint` runs both.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['**/dist/', '**/node_modules/', 'fixtures/', 'docs/results/', 'experiments/', 'runs/', 'coverage/', '.nx/', '.device/'],
  },
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  {
    files: ['**/*.{ts,mts,cts,js,mjs,cjs}'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      // Only the .js/.mjs files (scripts, bench, the cli launcher) use these: for .ts files
      // typescript-eslint turns no-undef off, since tsc already checks names.
      globals: globals.node,
    },
    rules: {
      // Unused code stays an error; a leading `_` marks a parameter or binding kept on purpose.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // `valid(x) || fail('...')` is this code base's idiom for validation chains (packages/cli/src/experiment/grid.ts).
      '@typescript-eslint/no-unused-expressions': ['error', { allowShortCircuit: true, allowTernary: true }],
      // Beyond recommended, both clean on the tree today: `==` only against null; type-only imports marked as such.
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
    },
  },
  {
    // `DeltaMethod<any>`, `DeltaSpec<any>`, `OptionSchema<any>` mean "of any options type": `<unknown>` rejects
    // methods whose hooks take their own options type (parameters are contravariant).
    files: [
      'packages/core/src/method-registry.ts',
      'packages/core/src/option-schema.ts',
      'packages/core/src/testing/conformance.ts',
      'packages/cli/src/methods.ts',
      'apps/studio/src/methods.ts',
      'apps/studio/src/method-form.ts',
    ],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Optional tfjs packages and tfjs internals are loaded dynamically and have no static types here.
    files: ['packages/backends/src/backend.ts', 'packages/backends/build/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Parsed Hugging Face config.json files: free-form JSON that the loaders check field by field.
    files: ['packages/models/src/node.ts', 'packages/models/src/model-files.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Tests read JSON reference fixtures and reach into process-wide registries.
    files: ['**/test/**/*.ts', 'test-*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
