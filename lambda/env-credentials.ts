/**
 * The credentials of our Lambda functions: their execution role's, which the Lambda runtime puts
 * in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN). The functions'
 * bundles alias the SDK's default credential chain (`@aws-sdk/credential-provider-node`) to this
 * module (DEPLOYER_BUNDLING): the chain's SSO, STS web identity, ini, process, container and IMDS
 * providers, and the nested SDK clients they carry, are never used in Lambda and are a fifth of
 * the deploy bundle. Outside the bundles (tests, `ship`) the default chain stays.
 */
import { fromEnv, type FromEnvInit } from '@aws-sdk/credential-provider-env';
import type { AwsCredentialIdentityProvider } from '@smithy/types';

/** Same name and call as the default chain's export, so the SDK clients' config takes it as is. */
export const defaultProvider = (init?: FromEnvInit): AwsCredentialIdentityProvider => fromEnv(init);
