"""The hazardous-waste ledger (台账), stock on hand, transfer manifests (联单) and mass-balance anomalies."""
