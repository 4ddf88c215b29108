"""Published numbers the notebooks show beside ours (sources and context: docs/literature.md)."""

from __future__ import annotations

import pandas as pd

SUN_TABLE4 = pd.DataFrame(
    {1.0: [5.42, 5.52], 0.95: [5.40, 5.46], 0.90: [5.52, 5.44], 0.85: [5.65, 5.58]}, index=["2e-5", "2.5e-5"]
)
"""Sun et al. 2019, Table 4: BERT-base on IMDb, test error (%) by base rate (rows) and layer-wise decay ξ (columns)."""

SUN_TABLE2 = {"head": 5.63, "tail": 5.44, "head+tail": 5.42}
"""Sun et al. 2019, Table 2: BERT-base on IMDb cut to 512 tokens, test error (%) by which end is kept."""
