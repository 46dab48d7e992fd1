// Strategic merge patch (`application/strategic-merge-patch+json`) as the API server and
// `kubectl patch` apply it (k8s.io/apimachinery/pkg/util/strategicpatch, with the server's
// options: parallel deletion lists merged, nulls of new values dropped), for the fields of an
// apps/v1 Deployment. Written from the algorithm's documented behaviour and checked against the
// real kubectl by strategic-merge.test.ts.
//
// Modelled: maps merge recursively; `null` deletes; lists with a patch strategy merge by their
// merge key (lists of scalars merge as sets); other lists are replaced; `$patch: replace` and
// `$patch: delete` on maps and list elements; `$retainKeys`; `$deleteFromPrimitiveList/<field>`;
// the order kubectl gives merged lists (patch order for elements the patch names, live order for
// the others, new elements ahead of the live ones they are not ordered against).
// Not modelled: `$setElementOrder/<field>` (what `kubectl apply` sends to fix a list's order) is
// dropped, so such a patch keeps the order above. Fields this schema does not know are merged
// like maps and replaced like lists (the real code, which knows the Go types, refuses unknown
// fields whose values are maps or lists on both sides).

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** How one field is patched: a list's strategy and merge key, and the schema below it. */
export interface PatchField {
  /** `merge` (by {@link mergeKey} for lists of maps; as a set for scalars). @default - lists are replaced, maps merged */
  readonly strategy?: 'merge';
  readonly mergeKey?: string;
  /** The fields of the value (a map) or of each element (a list of maps). @default - no field is special */
  readonly fields?: PatchSchema;
}

/** The patch metadata of an object's fields, by JSON field name (the Go types' struct tags). */
export interface PatchSchema {
  readonly [field: string]: PatchField;
}

/** A patch the algorithm refuses (a list element without its merge key, a bad directive…). */
export class StrategicMergeError extends Error {
  override readonly name = 'StrategicMergeError';
}

const byName = (fields?: PatchSchema): PatchField => ({
  strategy: 'merge',
  mergeKey: 'name',
  fields,
});

const OBJECT_META: PatchSchema = {
  finalizers: { strategy: 'merge' },
  ownerReferences: { strategy: 'merge', mergeKey: 'uid' },
};

const CONTAINER: PatchSchema = {
  ports: { strategy: 'merge', mergeKey: 'containerPort' },
  env: byName(),
  volumeMounts: { strategy: 'merge', mergeKey: 'mountPath' },
  volumeDevices: { strategy: 'merge', mergeKey: 'devicePath' },
};

/** core/v1 PodSpec's list fields that carry `patchStrategy:"merge"`. */
export const POD_SPEC_PATCH_SCHEMA: PatchSchema = {
  volumes: byName(),
  initContainers: byName(CONTAINER),
  containers: byName(CONTAINER),
  ephemeralContainers: byName(CONTAINER),
  imagePullSecrets: byName(),
  hostAliases: { strategy: 'merge', mergeKey: 'ip' },
  topologySpreadConstraints: { strategy: 'merge', mergeKey: 'topologyKey' },
  schedulingGates: byName(),
  resourceClaims: byName(),
};

/** apps/v1 Deployment (and ReplicaSet: the same shape where it matters). */
export const DEPLOYMENT_PATCH_SCHEMA: PatchSchema = {
  metadata: { fields: OBJECT_META },
  spec: {
    fields: {
      template: {
        fields: { metadata: { fields: OBJECT_META }, spec: { fields: POD_SPEC_PATCH_SCHEMA } },
      },
    },
  },
  status: { fields: { conditions: { strategy: 'merge', mergeKey: 'type' } } },
};

const DIRECTIVE = '$patch';
const RETAIN_KEYS = '$retainKeys';
const DELETE_FROM_PRIMITIVE_LIST = '$deleteFromPrimitiveList/';
const SET_ELEMENT_ORDER = '$setElementOrder/';

export function isJsonObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** JSON value equality (key order aside). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  }
  if (isJsonObject(a) && isJsonObject(b)) {
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length &&
      keys.every((k) => Object.prototype.hasOwnProperty.call(b, k) && jsonEqual(a[k], b[k]))
    );
  }
  return Object.is(a, b);
}

const show = (value: unknown): string => JSON.stringify(value);

type Kind = 'map' | 'list' | 'null' | 'string' | 'number' | 'boolean';
function kindOf(value: Json): Kind {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'object') return 'map';
  return typeof value as 'string' | 'number' | 'boolean';
}

/** Drops `null` values from a value the patch adds where nothing was (nothing to delete). */
function discardNulls(value: Json): Json {
  if (Array.isArray(value)) value.forEach(discardNulls);
  else if (isJsonObject(value)) {
    for (const [key, v] of Object.entries(value)) {
      if (v === null) delete value[key];
      else discardNulls(v);
    }
  }
  return value;
}

function mergeMap(
  original: JsonObject,
  patch: JsonObject,
  schema: PatchSchema | undefined,
): JsonObject {
  if (DIRECTIVE in patch) {
    const directive = patch[DIRECTIVE];
    if (directive === 'replace') {
      delete patch[DIRECTIVE];
      return patch;
    }
    if (directive === 'delete') return {};
    throw new StrategicMergeError(`unknown patch type: ${show(directive)} in map: ${show(patch)}`);
  }
  if (RETAIN_KEYS in patch) {
    const retain = patch[RETAIN_KEYS];
    delete patch[RETAIN_KEYS];
    if (!Array.isArray(retain)) {
      throw new StrategicMergeError(`${RETAIN_KEYS} must be a list, got ${show(retain)}`);
    }
    for (const key of Object.keys(original)) if (!retain.includes(key)) delete original[key];
  }

  for (const [patchKey, patchValue] of Object.entries(patch)) {
    if (patchKey.startsWith(SET_ELEMENT_ORDER)) continue;
    const isDeleteList = patchKey.startsWith(DELETE_FROM_PRIMITIVE_LIST);
    const key = isDeleteList ? patchKey.slice(DELETE_FROM_PRIMITIVE_LIST.length) : patchKey;

    if (patchValue === null) {
      delete original[key];
      continue;
    }
    if (!(key in original) || kindOf(original[key]!) !== kindOf(patchValue)) {
      if (!isDeleteList) original[key] = discardNulls(patchValue);
      continue;
    }
    const originalValue = original[key]!;
    const field = schema?.[key];
    if (isJsonObject(originalValue)) {
      original[key] = mergeMap(originalValue, patchValue as JsonObject, field?.fields);
    } else if (Array.isArray(originalValue)) {
      original[key] =
        field?.strategy === 'merge' || isDeleteList
          ? mergeList(originalValue, patchValue as Json[], key, field, isDeleteList)
          : patchValue;
    } else {
      original[key] = patchValue;
    }
  }
  return original;
}

function elementKind(name: string, ...lists: Json[][]): Kind {
  let kind: Kind | undefined;
  for (const value of lists.flat()) {
    const k = kindOf(value);
    if (k === 'list') throw new StrategicMergeError(`lists of lists are not supported (${name})`);
    if (kind !== undefined && k !== kind) {
      throw new StrategicMergeError(`list element types are not identical in ${name}`);
    }
    kind = k;
  }
  return kind ?? 'null';
}

/** Where an element sits in a list: by merge key for maps, by value for scalars. */
function indexIn(list: readonly Json[], item: Json, mergeKey: string | undefined): number {
  if (mergeKey === undefined) return list.findIndex((v) => jsonEqual(v, item));
  const wanted = (item as JsonObject)[mergeKey];
  return list.findIndex((v) => isJsonObject(v) && jsonEqual(v[mergeKey], wanted));
}

function keyOf(element: Json, mergeKey: string): Json {
  if (!isJsonObject(element) || !(mergeKey in element)) {
    throw new StrategicMergeError(
      `map: ${show(element)} does not contain declared merge key: ${mergeKey}`,
    );
  }
  return element[mergeKey]!;
}

function mergeList(
  original: Json[],
  patch: Json[],
  name: string,
  field: PatchField | undefined,
  isDeleteList: boolean,
): Json[] {
  if (original.length === 0 && patch.length === 0) return original;
  const kind = elementKind(name, original, patch);
  let live = original;
  let items = patch;
  let merged: Json[];
  const mergeKey = kind === 'map' ? field?.mergeKey : undefined;

  if (kind !== 'map') {
    if (isDeleteList) return original.filter((v) => !patch.some((d) => jsonEqual(d, v)));
    merged = [];
    for (const v of [...original, ...patch]) if (indexIn(merged, v, undefined) < 0) merged.push(v);
  } else {
    if (mergeKey === undefined) {
      throw new StrategicMergeError(`cannot merge lists without merge key for ${name}`);
    }
    // Elements with a `$patch` directive act on the list; the others are merged by key.
    let replace = false;
    items = [];
    for (const element of patch) {
      const directive = isJsonObject(element) ? element[DIRECTIVE] : undefined;
      if (directive === undefined) items.push(element);
      else if (directive === 'delete') {
        const key = keyOf(element, mergeKey);
        live = live.filter((v) => !(isJsonObject(v) && jsonEqual(v[mergeKey], key)));
      } else if (directive === 'replace') replace = true;
      else if (directive === 'merge') {
        throw new StrategicMergeError('merging lists cannot yet be specified in the patch');
      } else {
        throw new StrategicMergeError(`unknown patch type: ${show(directive)} in ${name}`);
      }
    }
    if (replace) {
      live = items;
      items = [];
    }
    merged = [...live];
    for (const element of items) {
      keyOf(element, mergeKey);
      const at = indexIn(merged, element, mergeKey);
      if (at >= 0) {
        merged[at] = mergeMap(merged[at] as JsonObject, element as JsonObject, field?.fields);
      } else {
        merged.push(element);
      }
    }
  }

  if (mergeKey !== undefined) for (const element of merged) keyOf(element, mergeKey);
  // The order: elements the patch names in the patch's order, the others in the live order;
  // an element of each kind goes first unless the live list puts it after the other.
  const inPatch = (v: Json): boolean => indexIn(items, v, mergeKey) >= 0;
  const byOrder = (order: readonly Json[]) => (a: Json, b: Json) =>
    indexIn(order, a, mergeKey) - indexIn(order, b, mergeKey);
  const patched = merged.filter(inPatch).sort(byOrder(items));
  const serverOnly = merged.filter((v) => !inPatch(v)).sort(byOrder(live));
  const result: Json[] = [];
  let i = 0;
  let j = 0;
  while (i < serverOnly.length || j < patched.length) {
    if (j >= patched.length) result.push(serverOnly[i++]!);
    else if (i >= serverOnly.length) result.push(patched[j++]!);
    else {
      const left = indexIn(live, serverOnly[i]!, mergeKey);
      const right = indexIn(live, patched[j]!, mergeKey);
      if (left >= 0 && right >= 0 && left < right) result.push(serverOnly[i++]!);
      else result.push(patched[j++]!);
    }
  }
  return result;
}

/**
 * Applies a strategic merge patch to an object, as `kubectl patch --type strategic` and the API
 * server do. Neither argument is changed. Throws {@link StrategicMergeError} for a patch the
 * real code refuses.
 */
export function strategicMerge<T extends object>(
  original: T,
  patch: unknown,
  schema: PatchSchema = DEPLOYMENT_PATCH_SCHEMA,
): T {
  if (!isJsonObject(original)) {
    throw new StrategicMergeError(
      `the object to patch must be a JSON object, got ${show(original)}`,
    );
  }
  if (!isJsonObject(patch)) {
    throw new StrategicMergeError(
      `a strategic merge patch must be a JSON object, got ${show(patch)}`,
    );
  }
  return mergeMap(structuredClone(original), structuredClone(patch), schema) as T;
}

/** Drops `null` map values at every depth, lists' elements included (nulls in lists stay). */
function pruneNulls(value: Json): Json {
  if (Array.isArray(value)) {
    for (const element of value) if (element !== null) pruneNulls(element);
  } else if (isJsonObject(value)) {
    for (const [key, v] of Object.entries(value)) {
      if (v === null) delete value[key];
      else pruneNulls(v);
    }
  }
  return value;
}

function mergeDocs(target: JsonObject, patch: JsonObject): JsonObject {
  for (const [key, value] of Object.entries(patch)) {
    const current = target[key];
    if (value === null) delete target[key];
    else if (current === undefined || current === null || !isJsonObject(current)) {
      target[key] = pruneNulls(value);
    } else {
      // A map replaced by a non-map keeps its nulls: kubectl's json-patch library does.
      target[key] = isJsonObject(value) ? mergeDocs(current, value) : value;
    }
  }
  return target;
}

/**
 * Applies a JSON merge patch (RFC 7386, `application/merge-patch+json`) as the API server and
 * kubectl do (evanphx/json-patch): maps merge, `null` deletes, anything else replaces, and the
 * nulls inside a value that replaces or adds are dropped. Neither argument is changed.
 */
export function jsonMergePatch<T extends object>(original: T, patch: unknown): T {
  if (!isJsonObject(original)) {
    throw new StrategicMergeError(
      `the object to patch must be a JSON object, got ${show(original)}`,
    );
  }
  if (!isJsonObject(patch)) {
    throw new StrategicMergeError(
      `a JSON merge patch for an object must be a JSON object, got ${show(patch)}`,
    );
  }
  return mergeDocs(structuredClone(original), structuredClone(patch)) as T;
}
