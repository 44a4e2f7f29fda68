"""From-scratch recurrence: cells, the time loop, stacks, and the state helpers."""

from gm.nn.gru import GRULayer
from gm.nn.lstm import LSTMLayer
from gm.nn.recurrent import RecurrentLayer
from gm.nn.rnn import ElmanLayer
from gm.nn.stack import CELLS, RecurrentStack
from gm.nn.state import State, detach_state, map_state, select_state, state_tensors, state_to

__all__ = [
    "CELLS",
    "ElmanLayer",
    "GRULayer",
    "LSTMLayer",
    "RecurrentLayer",
    "RecurrentStack",
    "State",
    "detach_state",
    "map_state",
    "select_state",
    "state_tensors",
    "state_to",
]
