import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", ".rtmanager/", "coverage/", ".scratch/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // The operator console (src/http/ui/assets) is plain ES modules run by the browser.
    files: ["src/http/ui/assets/**/*.js"],
    languageOptions: { globals: Object.fromEntries(["window", "document", "location", "sessionStorage", "fetch", "crypto", "AbortController", "AbortSignal", "TextDecoderStream", "URL", "URLSearchParams", "setTimeout", "clearTimeout", "setInterval", "clearInterval", "requestAnimationFrame", "cancelAnimationFrame", "performance", "console"].map((n) => [n, "readonly"])) },
  },
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "off",
    },
  },
  {
    // Errors go to pino as objects, under `err`, so its serializer keeps the type,
    // the message, the stack and the cause; a message string alone loses them.
    files: ["src/**/*.ts"],
    rules: {
      "no-restricted-syntax": [
        "error",
        {
          selector: "CallExpression[callee.property.name=/^(trace|debug|info|warn|error|fatal)$/] > ObjectExpression > Property[key.name=/^(err|error)$/] > MemberExpression[property.name='message']",
          message: "Log the error object ({ err }), not its message: pino's serializer keeps the stack and the cause.",
        },
        {
          selector: "CallExpression[callee.property.name=/^(trace|debug|info|warn|error|fatal)$/] > ObjectExpression > Property[key.name=/^(err|error)$/] > CallExpression[callee.name=/^(String|apiMessageOf)$/]",
          message: "Log the error object ({ err }), not a string made from it: pino's serializer keeps the stack and the cause.",
        },
      ],
    },
  },
);
