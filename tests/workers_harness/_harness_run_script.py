"""run_python.mjs's Python side: run a script as __main__, then await `async def main()` if any."""

import inspect
import sys


async def run(path, argv):
    with open(path, encoding="utf-8") as f:
        source = f.read()
    sys.argv = list(argv)
    g = {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__}
    exit_code = 0
    try:
        exec(compile(source, path, "exec"), g)
        main = g.get("main")
        if inspect.iscoroutinefunction(main):
            await main()
    except SystemExit as e:
        if e.code is None:
            exit_code = 0
        elif isinstance(e.code, int):
            exit_code = e.code
        else:
            print(e.code, file=sys.stderr)
            exit_code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return exit_code
