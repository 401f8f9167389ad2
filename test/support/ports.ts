export { freePort } from "../../infra/ports.ts";
