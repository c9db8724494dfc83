build/obj/taskkey.o: src/taskkey.c src/taskkey.h
src/taskkey.h:
