import { config } from "zod/mini";
import en from "zod/v4/locales/en.js";

// zod/mini carries no message text of its own (classic zod registered English by itself): every schema
// error the project reports, and every test that reads one, is in this English.
config(en());
