// The Kubernetes port: the API calls Lifeboat makes on one region's cluster, through the
// kubeconfig the plan names.
import { AppsV1Api, CoreV1Api, KubeConfig, VersionApi } from '@kubernetes/client-node';

export interface DeploymentState {
  name: string;
  replicas: number;
  readyReplicas: number;
}

export interface KubernetesCluster {
  /** The API server's version, e.g. v1.31.0. */
  version(): Promise<string>;
  /** Whether a namespace exists. */
  namespaceExists(namespace: string): Promise<boolean>;
  /** Deployments of a namespace with their desired and ready replicas. */
  listDeployments(namespace: string): Promise<DeploymentState[]>;
}

export function createKubernetesCluster(kubeconfig: string, context?: string): KubernetesCluster {
  let apis: { core: CoreV1Api; apps: AppsV1Api; version: VersionApi } | undefined;
  const api = () => {
    if (!apis) {
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfig);
      if (context) kc.setCurrentContext(context);
      apis = {
        core: kc.makeApiClient(CoreV1Api),
        apps: kc.makeApiClient(AppsV1Api),
        version: kc.makeApiClient(VersionApi),
      };
    }
    return apis;
  };
  return {
    async version() {
      return (await api().version.getCode()).gitVersion;
    },
    async namespaceExists(namespace) {
      try {
        await api().core.readNamespace({ name: namespace });
        return true;
      } catch (err) {
        if ((err as { code?: number }).code === 404) return false;
        throw err;
      }
    },
    async listDeployments(namespace) {
      const list = await api().apps.listNamespacedDeployment({ namespace });
      return list.items.map((d) => ({
        name: d.metadata?.name ?? '',
        replicas: d.spec?.replicas ?? 0,
        readyReplicas: d.status?.readyReplicas ?? 0,
      }));
    },
  };
}
