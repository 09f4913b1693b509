"""The two sides of an A/B timing script (ab_profile.py, kernel_ab.py): each a space-separated
list of VAR=VALUE, where BIN names the weft binary and the rest go to its environment."""
import os
import sys


def parse_side(text, script, default_binary):
    """(binary, environment) of side `text`; exits naming `script` on an item that is not VAR=VALUE."""
    env, binary = dict(os.environ), default_binary
    for item in text.split():
        name, sep, value = item.partition("=")
        if not sep or not name:
            sys.exit(f"{script}: side '{text}': '{item}' is not VAR=VALUE")
        if name == "BIN":
            binary = value
        else:
            env[name] = value
    return binary, env
