"""Silence one import-time warning of pyspark that every `dosewise` command would print otherwise.

With pyspark installed (`dosewise[spark]`), importing pandera imports pyspark.pandas, which warns
that it does not fully support pandas 3. Dosewise never uses pyspark.pandas.
"""

import warnings

warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
