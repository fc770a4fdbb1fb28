"""`synchub demo`: the bundled sandboxes and the hub on config/demo.yaml, playing the whole
business story of DESIGN.md (customers, a won deal, its sales order, the contract approval,
the approver's decision, a leave request) over real HTTP on loopback.

`stage.py` starts the systems; `story.py` plays the steps and builds the closing table.
"""
