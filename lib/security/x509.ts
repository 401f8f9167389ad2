import "./reflect-metadata.ts";
import * as x509 from "@peculiar/x509";

// The library looks for `self.crypto` (absent in Node) before `global.crypto`; pin the web-standard one
// so every runtime uses the same WebCrypto.
x509.cryptoProvider.set(globalThis.crypto);

export { x509 };
