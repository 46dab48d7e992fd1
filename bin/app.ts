#!/usr/bin/env node
/**
 * The app entry: the only place that reads CDK context. It builds the validated configuration,
 * composes the stacks and adds the compliance checks.
 */
import { App } from 'aws-cdk-lib';
import { addComplianceChecks, createStacks } from '../lib/app';
import { ConfigError, resolveConfig } from '../lib/config';
import { ClusterManifestError } from '../lib/constructs/dockercoins-cluster';
import { ManifestValueError } from '../lib/k8s/dockercoins';

const app = new App();

try {
  const { config, warnings } = resolveConfig(app.node.getAllContext() as Record<string, unknown>);
  // Once per synth, whatever the number of stacks (a stack annotation prints once per stack).
  for (const warning of warnings) {
    process.stderr.write(`[Warning] dockercoins-ship:config:${warning.key}: ${warning.message}\n`);
  }
  createStacks(app, config);
} catch (error) {
  // A value the configuration lets through but the manifests cannot take (a service without a
  // Deployment in k8s/) is a configuration error too.
  if (
    error instanceof ConfigError ||
    error instanceof ClusterManifestError ||
    error instanceof ManifestValueError
  ) {
    // One clear line, no stack trace: the message names the key, the value and the fix.
    process.stderr.write(`\nConfiguration error: ${error.message}\n\n`);
    process.exit(1);
  }
  throw error;
}

addComplianceChecks(app);
app.synth();
