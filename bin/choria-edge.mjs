#!/usr/bin/env node
// The sources are TypeScript; tsx's loader runs them directly so that there is no build step to forget.
import { register } from "tsx/esm/api";

register();
await import("../cli/main.ts");
