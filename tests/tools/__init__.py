"""Developer tools that check the source tree itself: the type check over the installed layout, structure figures."""
