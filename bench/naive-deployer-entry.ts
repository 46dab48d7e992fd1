/**
 * Entry of the naive deployer bundle (bench/deployer.ts): our handler, plus the aggregated SDK
 * clients imported eagerly, as a handler written against `new ECR({})`-style clients has them. An
 * aggregated class carries a method per command of its service, so every command stays in the
 * bundle. Bundled with esbuild's defaults (no `mainFields`: the SDK's CommonJS builds).
 */
export { CodeBuild } from '@aws-sdk/client-codebuild';
export { ECR } from '@aws-sdk/client-ecr';
export { EKS } from '@aws-sdk/client-eks';
export { SNS } from '@aws-sdk/client-sns';
export { handler } from '../lambda/deployer/handler';
