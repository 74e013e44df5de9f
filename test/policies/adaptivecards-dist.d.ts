/**
 * The bundled build of adaptivecards (the package's lib/ uses extensionless ES imports that plain
 * Node cannot load). Node sees it as CommonJS with one default export: the library's namespace.
 */
declare module 'adaptivecards/dist/adaptivecards.js' {
  const AdaptiveCards: typeof import('adaptivecards');
  export default AdaptiveCards;
}
