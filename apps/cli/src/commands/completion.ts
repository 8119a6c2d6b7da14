import type { Command } from "commander";
import type { Context } from "../context.js";
import { UsageError } from "../exit.js";

interface Node {
  path: string;
  subcommands: string[];
  options: string[];
}

/** Every command of the tree with its subcommands and visible flags. */
function walk(cmd: Command, prefix: string[], out: Node[]): void {
  const subs = cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
  out.push({
    path: prefix.join(" "),
    subcommands: subs.flatMap((c) => [c.name(), ...c.aliases()]),
    options: cmd.options.filter((o) => !o.hidden).flatMap((o) => [o.long, o.short].filter((x): x is string => !!x)),
  });
  for (const c of subs) for (const name of [c.name(), ...c.aliases()]) walk(c, [...prefix, name], out);
}

/** A bash completion script for the program (verbs, sub-verbs, flags; files elsewhere). */
export function bashCompletion(program: Command): string {
  const nodes: Node[] = [];
  walk(program, [], nodes);
  const cases = nodes
    .map((n) => `    "${n.path}") words="${[...n.subcommands, ...n.options, "--help"].join(" ")}" ;;`)
    .join("\n");
  return `# bash completion for berth (source it: eval "$(berth completion bash)")
_berth() {
  local cur path="" w i words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    case "\${path:+$path }$w" in
${nodes
  .filter((n) => n.path)
  .map((n) => `      "${n.path}") path="${n.path}" ;;`)
  .join("\n")}
    esac
  done
  case "$path" in
${cases}
  esac
  if [[ "$cur" == -* || -n "$words" ]]; then
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  fi
  [[ \${#COMPREPLY[@]} -eq 0 ]] && COMPREPLY=($(compgen -f -- "$cur"))
  return 0
}
complete -F _berth berth
`;
}

/** A zsh completion script: bash's, through bashcompinit. */
function zshCompletion(program: Command): string {
  return `autoload -U +X bashcompinit && bashcompinit\n${bashCompletion(program)}`;
}

/** Register `berth completion bash|zsh`. */
export function register(program: Command, ctx: Context): void {
  program
    .command("completion")
    .description("Print a shell completion script")
    .argument("<shell>", "bash or zsh")
    .addHelpText("after", '\nExamples:\n  eval "$(berth completion bash)"\n  berth completion bash > /etc/bash_completion.d/berth')
    .action((shell: string) => {
      if (shell === "bash") ctx.out(bashCompletion(program));
      else if (shell === "zsh") ctx.out(zshCompletion(program));
      else throw new UsageError(`unsupported shell ${JSON.stringify(shell)} (want bash or zsh)`);
    });
}
