/**
 * BuildLookup over CodeBuild BatchGetBuilds: what CodeBuild records of a build (project, status,
 * number, exported variables), against which every event is confirmed before a deploy. The id is
 * passed as the event gives it, `<project>:<uuid>` (AWS also accepts the ARN).
 */
import { BatchGetBuildsCommand, CodeBuildClient } from '@aws-sdk/client-codebuild';
import type { BuildLookup } from '../../../core/types';
import { variablesFromBuild } from '../../../core/parse';
import { AWS_CLIENT_DEFAULTS, awsFailure } from '../../../core/retry';

/** The CodeBuild client the deployer uses (SDK retries off: retry.ts retries). */
export function newCodeBuildClient(region: string): CodeBuildClient {
  return new CodeBuildClient({ region, ...AWS_CLIENT_DEFAULTS });
}

/** Builds the lookup; `client` is called once, on first use. */
export function createBuildLookup(client: () => CodeBuildClient): BuildLookup {
  let codebuild: CodeBuildClient | undefined;
  return {
    async describeBuild(buildId) {
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
      return {
        id: build.id ?? buildId,
        arn: build.arn,
        project: build.projectName,
        status: build.buildStatus,
        buildNumber: build.buildNumber,
        exportedVariables: variablesFromBuild(build),
      };
    },
  };
}
