/** asl-validator 4 ships no types: the one function the tests call. */
declare module 'asl-validator' {
  interface AslValidationResult {
    readonly isValid: boolean;
    readonly errors: readonly { readonly message?: string }[];
    errorsText(separator?: string): string;
  }
  function aslValidator(definition: unknown): AslValidationResult;
  export = aslValidator;
}
