// @peculiar/x509 registers its algorithms through tsyringe, which refuses to load unless
// `Reflect.getMetadata` exists. The full `reflect-metadata` polyfill is not a dependency, and tsyringe
// only stores and reads plain per-class metadata, so this installs just that much, and only when no
// polyfill is present already. Import it before anything that loads @peculiar/x509 (./x509.ts does).

type MetadataKey = unknown;
type Target = object;

interface ReflectMetadata {
  getMetadata?(key: MetadataKey, target: Target): unknown;
  getOwnMetadata?(key: MetadataKey, target: Target): unknown;
  defineMetadata?(key: MetadataKey, value: unknown, target: Target): void;
}

const reflect = Reflect as typeof Reflect & ReflectMetadata;

if (typeof reflect.getMetadata !== "function") {
  const store = new WeakMap<Target, Map<MetadataKey, unknown>>();

  const getOwnMetadata = (key: MetadataKey, target: Target): unknown => store.get(target)?.get(key);

  reflect.defineMetadata = (key, value, target) => {
    let entries = store.get(target);
    if (!entries) {
      entries = new Map();
      store.set(target, entries);
    }
    entries.set(key, value);
  };
  reflect.getOwnMetadata = getOwnMetadata;
  reflect.getMetadata = (key, target) => {
    for (let at: Target | null = target; at !== null; at = Object.getPrototypeOf(at)) {
      const entries = store.get(at);
      if (entries?.has(key)) return entries.get(key);
    }
    return undefined;
  };
}
