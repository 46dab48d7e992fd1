import type { KubernetesObject } from '../../lib/k8s/kustomize';

/**
 * Kubernetes RBAC authorization over Role, ClusterRole, RoleBinding and ClusterRoleBinding objects
 * (the rules of https://kubernetes.io/docs/reference/access-authn-authz/rbac/): a request is allowed
 * when a binding whose subjects include the user or one of its groups grants a rule matching its
 * API group, resource, verb and name. A RoleBinding grants in its own namespace only; a rule with
 * resourceNames never matches a request without a name (a list); `*` matches anything. RBAC only
 * allows: nothing here denies.
 */
export interface RbacRequest {
  readonly user: string;
  readonly verb: string;
  readonly apiGroup: string;
  /** The resource, with its subresource after a slash (`pods/exec`). */
  readonly resource: string;
  /** undefined: a cluster-scoped request. */
  readonly namespace: string | undefined;
  /** undefined: a list, watch or create. */
  readonly name: string | undefined;
}

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs: string[];
}

interface Subject {
  kind: string;
  name: string;
  namespace?: string;
}

const includes = (list: readonly string[] | undefined, value: string): boolean =>
  (list ?? []).includes('*') || (list ?? []).includes(value);

function ruleMatches(rule: PolicyRule, request: RbacRequest): boolean {
  if (!includes(rule.verbs, request.verb)) return false;
  if (!includes(rule.apiGroups, request.apiGroup)) return false;
  if (!includes(rule.resources, request.resource)) return false;
  if (rule.resourceNames !== undefined && rule.resourceNames.length > 0) {
    return request.name !== undefined && rule.resourceNames.includes(request.name);
  }
  return true;
}

/**
 * How a subject names a request's user or group. A ServiceAccount is the user
 * `system:serviceaccount:<namespace>:<name>`, its namespace defaulting to the binding's (as
 * `appliesToUser` in kubernetes/pkg/registry/rbac/validation/rule.go does).
 */
function subjectKey(subject: Subject, bindingNamespace: string | undefined): string {
  if (subject.kind === 'ServiceAccount') {
    const namespace = subject.namespace ?? bindingNamespace ?? '';
    return `User/system:serviceaccount:${namespace}:${subject.name}`;
  }
  return `${subject.kind}/${subject.name}`;
}

/**
 * An authorizer from RBAC objects; `groups` maps a user to its groups (what the EKS access entry's
 * kubernetesGroups give the role it maps).
 */
export function rbacAuthorizer(
  objects: readonly KubernetesObject[],
  groups: Readonly<Record<string, readonly string[]>> = {},
): (request: RbacRequest) => boolean {
  const roles = new Map<string, PolicyRule[]>();
  for (const o of objects) {
    if (o.kind === 'Role' || o.kind === 'ClusterRole') {
      const key = `${o.kind}/${o.kind === 'Role' ? (o.metadata.namespace ?? '') : ''}/${o.metadata.name}`;
      roles.set(key, (o.rules as PolicyRule[] | undefined) ?? []);
    }
  }
  const bindings = objects.filter(
    (o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding',
  );
  return (request) => {
    const who = new Set([
      `User/${request.user}`,
      ...(groups[request.user] ?? []).map((g) => `Group/${g}`),
    ]);
    return bindings.some((binding) => {
      const namespace = binding.kind === 'RoleBinding' ? binding.metadata.namespace : undefined;
      // A RoleBinding grants within its namespace only, never on cluster-scoped requests.
      if (binding.kind === 'RoleBinding' && request.namespace !== namespace) return false;
      const subjects = (binding.subjects as Subject[] | undefined) ?? [];
      if (!subjects.some((s) => who.has(subjectKey(s, namespace)))) return false;
      const roleRef = binding.roleRef as { kind: string; name: string };
      const key =
        roleRef.kind === 'Role'
          ? `Role/${namespace ?? ''}/${roleRef.name}`
          : `ClusterRole//${roleRef.name}`;
      return (roles.get(key) ?? []).some((rule) => ruleMatches(rule, request));
    });
  };
}
