"""Pre-train seed 004's base on digits 0-4 and save it beside the example.

    python examples/seed004_pretrain.py            # writes examples/seed004_base.keras

``lrlab run examples/seed004_transfer.toml`` does this itself the first time; run this to
make (or remake) the file explicitly. Seeded and offline: the same file every time.
"""

from seed004_transfer import pretrain

if __name__ == "__main__":
    pretrain()
