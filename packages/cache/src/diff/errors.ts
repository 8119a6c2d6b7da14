/**
 * The stable codes of the errors the filesystem diff and the layer writer
 * raise (the classes are `@berth/digest`'s). Callers branch on `code`.
 * @module
 */

/** Error codes of `diffTrees`, `directoryTree`, `entriesTree`, `IdentityMapping` and `writeLayer`. */
export const DiffErrorCode = {
  /** The upper (or a lower) root is not a directory (InvalidArgumentError). */
  NOT_A_DIRECTORY: "ERR_NOT_A_DIRECTORY",
  /** An owner the identity mapping does not cover (InvalidArgumentError). */
  UNMAPPED_ID: "ERR_UNMAPPED_ID",
  /** An identity mapping with a negative, fractional or overlapping range (InvalidArgumentError). */
  INVALID_ID_MAPPING: "ERR_INVALID_ID_MAPPING",
  /** A caller-given entry list with an absolute, `..` or duplicate path, or a path under a non-directory (InvalidArgumentError). */
  INVALID_TREE_ENTRY: "ERR_INVALID_TREE_ENTRY",
  /** The layer writer was asked for contents the upper tree cannot give (FailedPreconditionError). */
  NO_CONTENT: "ERR_NO_CONTENT",
} as const;

/** One of the {@link DiffErrorCode} values. */
export type DiffErrorCodeValue = (typeof DiffErrorCode)[keyof typeof DiffErrorCode];
