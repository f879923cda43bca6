// The module specifiers a JavaScript or declaration file loads, read from its syntax tree (not
// with a regular expression, which would also match comments and strings).
import ts from 'typescript';

const REQUIRE_CALLEES = new Set(['require', 'require.resolve', 'this.require']);

/**
 * Specifiers of static imports and re-exports, `import('x')` (also as a type in .d.ts files),
 * and `require('x')` / `require.resolve('x')` with a literal argument.
 */
export function moduleSpecifiers(fileName: string, text: string): string[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false);
  const found: string[] = [];
  const literal = (node: ts.Node | undefined) => {
    if (node && ts.isStringLiteralLike(node)) found.push(node.text);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) literal(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference))
      literal(node.moduleReference.expression);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) literal(node.argument.literal);
    else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || REQUIRE_CALLEES.has(callee.getText(source)))
        literal(node.arguments[0]);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The npm package a bare specifier belongs to (`@scope/name/sub` → `@scope/name`). */
export function packageOf(specifier: string): string {
  return specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');
}
