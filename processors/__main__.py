"""`python -m processors`: run one worker in the foreground (same as `carinho processors`)."""

from processors.app import run
from processors.settings import ProcessorSettings

if __name__ == "__main__":
    run(ProcessorSettings())
