"""The biology on the lattice: state, tumour, tissue fields, immune system and drug
penetration, each with the scenario section it reads declared beside its code."""
