"""From-scratch recurrence: cells, the time loop and stacks (the state helpers are ``gm.state``)."""

from gm.nn.gru import GRULayer
from gm.nn.lstm import LSTMLayer
from gm.nn.recurrent import RecurrentLayer
from gm.nn.rnn import ElmanLayer
from gm.nn.stack import CELLS, RecurrentStack

__all__ = [
    "CELLS",
    "ElmanLayer",
    "GRULayer",
    "LSTMLayer",
    "RecurrentLayer",
    "RecurrentStack",
]
