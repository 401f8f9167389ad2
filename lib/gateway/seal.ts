// Callback secrets go into job records sealed (lib/results/jobs/sealed-secret.ts says why).
import type { CallbackTarget } from "../results/jobs/mod.ts";
import { importSealKey, sealSecret } from "../results/jobs/mod.ts";

export interface CallbackSealer {
  /** False without a seal key: a request that names a callback secret is then refused. */
  readonly keepsSecrets: boolean;
  /** The callback as the job record keeps it: a URL callback's secret sealed. */
  seal(callback: CallbackTarget | undefined): Promise<CallbackTarget | undefined>;
}

/**
 * A sealer for the configured key. A secret the operator configured (a key's or a trigger's callback)
 * that could not be sealed is a start-up error, not a request's: this throws naming where it is.
 */
export function callbackSealer(
  sealKeyText: string | undefined,
  configured: readonly { where: string; callback: CallbackTarget | undefined }[],
): CallbackSealer {
  const sealKey = sealKeyText === undefined ? undefined : importSealKey(sealKeyText);
  if (sealKey === undefined)
    for (const { where, callback } of configured)
      if (callback?.kind === "url" && callback.secret !== undefined)
        throw new Error(
          `${where}: a callback secret needs callbackSealKey (--callback-seal-key), so that job records do not hold it in clear`,
        );
  return {
    keepsSecrets: sealKey !== undefined,
    async seal(callback) {
      if (callback?.kind !== "url" || callback.secret === undefined) return callback;
      if (sealKey === undefined)
        throw new Error("a callback secret reached a gateway without callbackSealKey");
      const { secret, ...rest } = callback;
      return { ...rest, secret_sealed: await sealSecret(await sealKey, secret, callback.url) };
    },
  };
}
