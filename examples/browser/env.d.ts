/// <reference types="vite/client" />
// Vite's ambient types: `?url` imports (the wasm backend's binaries in main.ts).
