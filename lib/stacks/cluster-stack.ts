import { Aws, CfnOutput, Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { ClusterConfig, RegistryConfig, ServiceConfig } from '../config';
import { DockerCoinsCluster } from '../constructs/dockercoins-cluster';

export interface ClusterStackProps extends StackProps {
  /** The EKS cluster's name. */
  readonly clusterName: string;
  /**
   * The namespaces DockerCoins is installed in: those of the environments that deploy to this
   * cluster, the first one first (it keeps the resources of a one-namespace install).
   */
  readonly namespaces: readonly string[];
  readonly services: readonly ServiceConfig[];
  readonly registry: RegistryConfig;
  /** Must have `create` on; without an `initialImageTag` DockerCoins starts from the seed's public images. */
  readonly cluster: ClusterConfig;
}

/**
 * The optional cluster (`createCluster`): an EKS Auto Mode cluster in its own VPC, with
 * DockerCoins installed from ECR and, with `inClusterRegistry`, the registry on S3.
 *
 * ECR repositories and the pull-through cache are named, not referenced across stacks: the app
 * orders this stack after the registry stack instead.
 */
export class ClusterStack extends Stack {
  public readonly dockerCoinsCluster: DockerCoinsCluster;

  constructor(scope: Construct, id: string, props: ClusterStackProps) {
    super(scope, id, props);
    const { cluster, registry } = props;
    if (!cluster.create) {
      throw new Error(
        `${id} installs DockerCoins on a cluster it creates: it needs createCluster=true (got createCluster=false).`,
      );
    }

    // The construct id is part of every resource's logical id (the cluster, the bucket): keep it.
    this.dockerCoinsCluster = new DockerCoinsCluster(this, 'DockerCoins', {
      clusterName: props.clusterName,
      services: props.services,
      initialImageTag: cluster.initialImageTag,
      namespaces: props.namespaces,
      repositoryPrefix: registry.repositoryPrefix,
      pullThroughCachePrefix: registry.pullThroughCachePrefix,
      redisImageTag: registry.redisImageTag,
      inClusterRegistry: cluster.inClusterRegistry,
      registryNodePort: cluster.registryNodePort,
      endpointPublicCidrs: cluster.endpointPublicCidrs,
    });

    new CfnOutput(this, 'ClusterName', {
      description: 'The EKS cluster that runs DockerCoins',
      value: this.dockerCoinsCluster.cluster.clusterName,
    });
    new CfnOutput(this, 'UpdateKubeconfigCommand', {
      description:
        'Adds the cluster to ~/.kube/config (your IAM principal needs an access entry: README)',
      value: `aws eks update-kubeconfig --name ${props.clusterName} --region ${Aws.REGION}`,
    });
    const bucket = this.dockerCoinsCluster.registryBucket;
    if (bucket !== undefined) {
      new CfnOutput(this, 'RegistryBucket', {
        description:
          'S3 bucket of the in-cluster registry (retained when the stack is deleted); create its htpasswd Secret with k8s/registry/make-htpasswd.sh',
        value: bucket.bucketName,
      });
    }
  }
}
