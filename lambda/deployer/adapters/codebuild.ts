/**
 * BuildLookup over CodeBuild BatchGetBuilds, for events that arrive without the build's exported
 * variables. The id is passed as the event gives it, `<project>:<uuid>` (AWS also accepts the ARN).
 */
import { BatchGetBuildsCommand, CodeBuildClient } from '@aws-sdk/client-codebuild';
import type { BuildLookup } from '../../../core/types';
import { AWS_CLIENT_DEFAULTS, awsFailure } from '../../../core/retry';

/** The CodeBuild client the deployer uses (SDK retries off: retry.ts retries). */
export function newCodeBuildClient(region: string): CodeBuildClient {
  return new CodeBuildClient({ region, ...AWS_CLIENT_DEFAULTS });
}

/** Builds the lookup; `client` is called once, on first use. */
export function createBuildLookup(client: () => CodeBuildClient): BuildLookup {
  let codebuild: CodeBuildClient | undefined;
  return {
    async exportedVariables(buildId) {
      codebuild ??= client();
      let answer;
      try {
        answer = await codebuild.send(new BatchGetBuildsCommand({ ids: [buildId] }));
      } catch (error) {
        throw awsFailure(
          `CodeBuild BatchGetBuilds of ${buildId}`,
          error,
          `The deployer's role needs codebuild:BatchGetBuilds on the project of build ${buildId}.`,
        );
      }
      const build = answer.builds?.find((b) => b.id === buildId || b.arn === buildId);
      if (build === undefined) return undefined;
      // A variable without a value is left out, not made "": parse then names it as missing.
      const variables: Record<string, string> = {};
      for (const { name, value } of build.exportedEnvironmentVariables ?? []) {
        if (name !== undefined && value !== undefined) variables[name] = value;
      }
      return variables;
    },
  };
}
