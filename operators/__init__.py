"""Operator tools: the dead-letter reprocessing tool (`carinho dlq`), the audit of operator actions,
the daily report, the integration matrix and the operations web page (`/ops`).

Every output here is masked (hub.masking) unless the operator asks for `--reveal`, which is audited.
"""
