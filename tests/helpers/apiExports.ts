import ts from 'typescript';
import { fileURLToPath } from 'node:url';

/** The names each public entry point exports (values and types), read by the TypeScript checker. */
export function publicExports(): Record<'index' | 'node', string[]> {
  const entry = (f: string) => fileURLToPath(new URL(`../../src/${f}`, import.meta.url));
  const files = { index: entry('index.ts'), node: entry('node.ts') };
  const program = ts.createProgram(Object.values(files), {
    module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022, strict: true, noEmit: true, skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const names = (file: string) => {
    const source = program.getSourceFile(file);
    if (!source) throw new Error(`cannot read ${file}`);
    const symbol = checker.getSymbolAtLocation(source);
    if (!symbol) throw new Error(`${file} is not a module`);
    return checker.getExportsOfModule(symbol).map((s) => s.getName()).sort();
  };
  return { index: names(files.index), node: names(files.node) };
}
