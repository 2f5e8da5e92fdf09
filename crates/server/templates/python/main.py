"""A small Python program: edit it, then run it from the Processes panel or the terminal."""


def greet(name: str) -> str:
    return f"Hello, {name}!"


if __name__ == "__main__":
    print(greet("cove"))
