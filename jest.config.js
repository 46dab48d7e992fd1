/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Node 20 lacks Promise.withResolvers, which aws-local-stepfunctions uses (the deploy workflow tests).
  setupFiles: ['<rootDir>/test/setup/promise-with-resolvers.ts'],
  transform: {
    // Type-checking is `npm run typecheck`'s job; here ts-jest only transpiles (isolatedModules).
    '^.+\\.ts$': 'ts-jest',
  },
  // Synthesizing whole apps with cdk-nag and running cfn-lint takes seconds, not milliseconds.
  testTimeout: 120000,
};
