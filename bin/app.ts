#!/usr/bin/env node
/**
 * The app entry: the only place that reads CDK context. It builds the validated configuration,
 * composes the stacks and adds the compliance checks.
 */
import { App } from 'aws-cdk-lib';
import { addComplianceChecks, createStacks } from '../lib/app';
import { ConfigError, ResolvedConfig, resolveConfig } from '../lib/config';

const app = new App();

let resolved: ResolvedConfig;
try {
  resolved = resolveConfig(app.node.getAllContext() as Record<string, unknown>);
} catch (error) {
  if (error instanceof ConfigError) {
    // One clear line, no stack trace: the message names the key, the value and the fix.
    process.stderr.write(`\nConfiguration error: ${error.message}\n\n`);
    process.exit(1);
  }
  throw error;
}

createStacks(app, resolved.config, resolved.warnings);
addComplianceChecks(app);
app.synth();
