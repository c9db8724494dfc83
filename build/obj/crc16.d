build/obj/crc16.o: src/crc16.c src/crc16.h
src/crc16.h:
