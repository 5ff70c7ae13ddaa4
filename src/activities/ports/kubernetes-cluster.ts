// The Kubernetes port: the API calls Lifeboat makes on one region's cluster, through the
// kubeconfig the plan names.
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  VersionApi,
  setHeaderOptions,
} from '@kubernetes/client-node';

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
  /** Sets a deployment's desired replicas through its scale subresource. */
  scaleDeployment(namespace: string, name: string, replicas: number): Promise<void>;
  /** One deployment's desired and ready replicas (ready counts only the current generation). */
  readDeployment(namespace: string, name: string): Promise<DeploymentState>;
  /** Sets keys and annotations of a configmap, creating it when it does not exist. */
  applyConfigMap(
    namespace: string,
    name: string,
    data: Record<string, string>,
    annotations: Record<string, string>,
  ): Promise<void>;
  /** A configmap's data, or undefined when it does not exist. */
  readConfigMap(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** Every object of a kind in a namespace (optionally by label selector), as plain JSON. */
  listObjects(
    apiVersion: string,
    kind: string,
    namespace: string,
    labelSelector?: string,
  ): Promise<Record<string, unknown>[]>;
  /** One cluster-scoped object (a namespace) as plain JSON, or undefined when it does not exist. */
  readClusterObject(
    apiVersion: string,
    kind: string,
    name: string,
  ): Promise<Record<string, unknown> | undefined>;
}

export function createKubernetesCluster(kubeconfig: string, context?: string): KubernetesCluster {
  let apis:
    { core: CoreV1Api; apps: AppsV1Api; version: VersionApi; objects: KubernetesObjectApi } | undefined;
  const api = () => {
    if (!apis) {
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfig);
      if (context) kc.setCurrentContext(context);
      apis = {
        core: kc.makeApiClient(CoreV1Api),
        apps: kc.makeApiClient(AppsV1Api),
        version: kc.makeApiClient(VersionApi),
        objects: KubernetesObjectApi.makeApiClient(kc),
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
    async scaleDeployment(namespace, name, replicas) {
      await api().apps.patchNamespacedDeploymentScale(
        { namespace, name, body: { spec: { replicas } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    },
    async readDeployment(namespace, name) {
      const d = await api().apps.readNamespacedDeployment({ namespace, name });
      const current = (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
      return {
        name,
        replicas: d.spec?.replicas ?? 0,
        readyReplicas: current ? (d.status?.readyReplicas ?? 0) : 0,
      };
    },
    async applyConfigMap(namespace, name, data, annotations) {
      try {
        await api().core.patchNamespacedConfigMap(
          { namespace, name, body: { metadata: { annotations }, data } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw err;
        await api().core.createNamespacedConfigMap({
          namespace,
          body: { metadata: { name, namespace, annotations }, data },
        });
      }
    },
    async readConfigMap(namespace, name) {
      try {
        return (await api().core.readNamespacedConfigMap({ namespace, name })).data ?? {};
      } catch (err) {
        if ((err as { code?: number }).code === 404) return undefined;
        throw err;
      }
    },
    async listObjects(apiVersion, kind, namespace, labelSelector) {
      const items: Record<string, unknown>[] = [];
      let token: string | undefined;
      do {
        const page = await api().objects.list(
          apiVersion,
          kind,
          namespace,
          undefined,
          undefined,
          undefined,
          undefined,
          labelSelector,
          500,
          token,
        );
        // The client turns timestamps into Date objects; a JSON round trip gives the API's JSON back.
        for (const item of page.items)
          items.push({ apiVersion, kind, ...(JSON.parse(JSON.stringify(item)) as Record<string, unknown>) });
        token = page.metadata?._continue || undefined;
      } while (token);
      return items;
    },
    async readClusterObject(apiVersion, kind, name) {
      try {
        const obj = await api().objects.read({ apiVersion, kind, metadata: { name } });
        return JSON.parse(JSON.stringify(obj)) as Record<string, unknown>;
      } catch (err) {
        if ((err as { code?: number }).code === 404) return undefined;
        throw err;
      }
    },
  };
}
